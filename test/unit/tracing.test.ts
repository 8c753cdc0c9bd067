import { context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { expect } from 'chai';
import { contextOf, sagaContext, traceIdOf, traceparentOf } from '../../src/engine/tracing';
import { startTracing, tracingExporters } from '../../src/tracing';
import { MemoryTracing } from '../helpers/tracing';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('tracing', () => {
  describe('OTEL_* environment: off unless configured', () => {
    it('is off with no OTEL_* variable', () => {
      expect(tracingExporters({})).to.deep.equal([]);
    });

    it('an OTLP endpoint (general or traces) turns the OTLP exporter on', () => {
      expect(tracingExporters({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).to.deep.equal(['otlp']);
      expect(tracingExporters({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).to.deep.equal(['otlp']);
    });

    it('OTEL_TRACES_EXPORTER names them; none and OTEL_SDK_DISABLED turn it off', () => {
      expect(tracingExporters({ OTEL_TRACES_EXPORTER: 'console, otlp' })).to.deep.equal(['console', 'otlp']);
      expect(tracingExporters({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).to.deep.equal([]);
      expect(tracingExporters({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' })).to.deep.equal([]);
    });

    it('an OTLP protocol other than http/protobuf is an error naming the variable, before anything is registered', () => {
      expect(() => startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'p'))
        .to.throw('OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" is not supported; the orchestrator exports OTLP as http/protobuf');
      expect(() => startTracing({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }, 'p')).to.throw('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL');
      expect(startTracing({}, 'p')).to.equal(undefined);
    });

    it('an unknown exporter is an error naming the variable', () => {
      expect(() => tracingExporters({ OTEL_TRACES_EXPORTER: 'jaeger' })).to.throw('OTEL_TRACES_EXPORTER: unknown exporter "jaeger" (one of otlp, console, none)');
    });
  });

  describe('traceparent', () => {
    it('round-trips through a context', () => {
      const ctx = contextOf(TP)!;
      expect(trace.getSpanContext(ctx)).to.deep.include({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1, isRemote: true });
      expect(traceparentOf(ctx)).to.equal(TP);
      expect(traceIdOf(TP)).to.equal('4bf92f3577b34da6a3ce929d0e0e4736');
    });

    it('a malformed, all-zero or version ff traceparent gives no context', () => {
      for (const bad of [undefined, '', 'nonsense', '00-00000000000000000000000000000000-00f067aa0ba902b7-01', `ff${TP.slice(2)}`, '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01']) {
        expect(contextOf(bad), String(bad)).to.equal(undefined);
      }
    });

    it('with no span active (tracing off) there is no traceparent to send or store', () => {
      expect(traceparentOf(ROOT_CONTEXT)).to.equal(undefined);
      expect(traceparentOf()).to.equal(undefined);
    });

    describe('with the SDK (a context manager)', () => {
      const tracing = new MemoryTracing();
      before(() => tracing.install());
      after(() => tracing.uninstall());

      it('a saga span goes under the active span only when it is in the saga\'s trace, else under the stored context', () => {
        const other = contextOf('00-11111111111111111111111111111111-2222222222222222-01')!;
        const same = contextOf('00-4bf92f3577b34da6a3ce929d0e0e4736-3333333333333333-01')!;
        expect(traceparentOf(context.with(other, () => sagaContext(TP)))).to.equal(TP);
        expect(traceparentOf(context.with(same, () => sagaContext(TP)))).to.equal(traceparentOf(same));
        expect(traceparentOf(context.with(other, () => sagaContext(undefined)))).to.equal(traceparentOf(other));
      });
    });
  });
});
