import type * as protoLoader from '@grpc/proto-loader';
import { FileDescriptorProto, type IDescriptorProto, type IFileDescriptorProto } from 'protobufjs/ext/descriptor';

/**
 * The package definition with each file's `dependency` list filled in, for server reflection.
 * proto-loader leaves it empty (grpc/grpc-node#2595), so a client that builds the schema from
 * reflection (buf curl, grpcurl) cannot resolve a type another package declares: every demo
 * service's ListCalls (demo.v1) failed with "failed to find service".
 */
export function withFileDependencies(definition: protoLoader.PackageDefinition): protoLoader.PackageDefinition {
  const files = new Map<string, IFileDescriptorProto>();
  for (const bins of descriptorSets(definition)) {
    for (const bin of bins) {
      const file = FileDescriptorProto.decode(bin) as IFileDescriptorProto;
      if (file.name && !files.has(file.name)) files.set(file.name, file);
    }
  }
  const fileOf = new Map<string, string>();
  for (const file of files.values()) {
    const prefix = file.package ? `.${file.package}.` : '.';
    for (const m of file.messageType ?? []) indexMessage(m, prefix, file.name!, fileOf);
    for (const e of file.enumType ?? []) fileOf.set(`${prefix}${e.name}`, file.name!);
  }
  const encoded = new Map<string, Buffer>();
  for (const file of files.values()) {
    const refs = [
      ...(file.messageType ?? []).flatMap(fieldTypes),
      ...(file.service ?? []).flatMap((s) => (s.method ?? []).flatMap((m) => [m.inputType, m.outputType])),
    ];
    const deps = new Set(refs.map((r) => (r ? fileOf.get(r) : undefined)).filter((f): f is string => f !== undefined && f !== file.name));
    file.dependency = [...deps];
    encoded.set(file.name!, Buffer.from(FileDescriptorProto.encode(file as Parameters<typeof FileDescriptorProto.encode>[0]).finish()));
  }
  const relink = (bins: Buffer[]) => bins.map((bin) => encoded.get((FileDescriptorProto.decode(bin) as IFileDescriptorProto).name!) ?? bin);
  const out: protoLoader.PackageDefinition = {};
  for (const [name, def] of Object.entries(definition)) {
    if ('fileDescriptorProtos' in def && Array.isArray(def.fileDescriptorProtos)) {
      out[name] = { ...def, fileDescriptorProtos: relink(def.fileDescriptorProtos) } as typeof def;
    } else {
      out[name] = def;
    }
  }
  return out;
}

function descriptorSets(definition: protoLoader.PackageDefinition): Buffer[][] {
  return Object.values(definition).flatMap((def) => ('fileDescriptorProtos' in def && Array.isArray(def.fileDescriptorProtos) ? [def.fileDescriptorProtos] : []));
}

function indexMessage(m: IDescriptorProto, prefix: string, file: string, fileOf: Map<string, string>): void {
  const fqn = `${prefix}${m.name}`;
  fileOf.set(fqn, file);
  for (const nested of m.nestedType ?? []) indexMessage(nested, `${fqn}.`, file, fileOf);
  for (const e of m.enumType ?? []) fileOf.set(`${fqn}.${e.name}`, file);
}

function fieldTypes(m: IDescriptorProto): (string | undefined)[] {
  return [...(m.field ?? []).map((f) => f.typeName ?? undefined), ...(m.nestedType ?? []).flatMap(fieldTypes)];
}
