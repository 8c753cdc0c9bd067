// Every action goes through this dialog: it says what will happen, and only "confirm" does it.

const dialog = () => document.getElementById('confirm');

/**
 * Shows the confirmation; `extra` (optional) holds form fields read by `action` (which may throw:
 * the error is shown and the dialog stays open). Resolves with the action's result, or undefined
 * when the operator backs out.
 */
export function confirmAction({ title, text, confirm, extra, action }) {
  const d = dialog();
  // One action at a time: a second click while the dialog is up changes nothing.
  if (d.open) return Promise.resolve(undefined);
  const error = d.querySelector('#confirm-error');
  const yes = d.querySelector('#confirm-yes');
  d.querySelector('#confirm-title').textContent = title;
  d.querySelector('#confirm-text').textContent = text;
  d.querySelector('#confirm-extra').replaceChildren(...(extra ? [extra] : []));
  error.hidden = true;
  yes.textContent = confirm;
  yes.disabled = false;
  return new Promise((resolve) => {
    const onSubmit = async (e) => {
      if (e.submitter?.value !== 'ok') return; // Back: the dialog closes by itself
      e.preventDefault();
      yes.disabled = true;
      try {
        const result = await action();
        finish(result);
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
        yes.disabled = false;
      }
    };
    const onClose = () => finish(undefined);
    const finish = (result) => {
      d.querySelector('form').removeEventListener('submit', onSubmit);
      d.removeEventListener('close', onClose);
      if (d.open) d.close();
      resolve(result);
    };
    d.querySelector('form').addEventListener('submit', onSubmit);
    d.addEventListener('close', onClose);
    d.showModal();
  });
}
