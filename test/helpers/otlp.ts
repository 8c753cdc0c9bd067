import protobuf from 'protobufjs';

/**
 * The part of OTLP's trace export (opentelemetry/proto/collector/trace/v1, trace/v1, common/v1)
 * the tests read, with the upstream field numbers; protobuf skips the fields left out.
 */
const OTLP_PROTO = `
syntax = "proto3";
package otlp;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message Resource { repeated KeyValue attributes = 1; }
message ScopeSpans { repeated Span spans = 2; }
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  bytes parent_span_id = 4;
  string name = 5;
  repeated KeyValue attributes = 9;
}
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; }
}
`;

const Request = protobuf.parse(OTLP_PROTO, { keepCase: true }).root.lookupType('otlp.ExportTraceServiceRequest');

/** One exported span, ids in lowercase hex as in a traceparent; attribute values as strings. */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  attributes: Record<string, string>;
  /** The exporting resource's service.name. */
  service: string;
}

/** A KeyValue as toObject gives it: the AnyValue's one set field (int64 as a decimal string). */
interface KeyValue { key: string; value?: Record<string, string | number | boolean> }
interface DecodedSpan { trace_id?: string; span_id?: string; parent_span_id?: string; name?: string; attributes?: KeyValue[] }

function attributesOf(kvs: KeyValue[] | undefined): Record<string, string> {
  return Object.fromEntries((kvs ?? []).map((kv) => [kv.key, String(Object.values(kv.value ?? {})[0] ?? '')]));
}

/** The spans of OTLP/HTTP protobuf export bodies (POST /v1/traces), decoded. */
export function spansOf(bodies: readonly Buffer[]): OtlpSpan[] {
  return bodies.flatMap((body) => {
    const request = Request.toObject(Request.decode(body), { longs: String, bytes: String, defaults: false }) as {
      resource_spans?: { resource?: { attributes?: KeyValue[] }; scope_spans?: { spans?: DecodedSpan[] }[] }[];
    };
    return (request.resource_spans ?? []).flatMap((rs) => {
      const service = attributesOf(rs.resource?.attributes)['service.name'] ?? '';
      return (rs.scope_spans ?? []).flatMap((ss) => (ss.spans ?? []).map((s): OtlpSpan => ({
        traceId: hex(s.trace_id),
        spanId: hex(s.span_id),
        parentSpanId: hex(s.parent_span_id),
        name: s.name ?? '',
        attributes: attributesOf(s.attributes),
        service,
      })));
    });
  });
}

/** toObject's base64 (bytes: String) as hex; absent: ''. */
function hex(value: string | undefined): string {
  return value === undefined ? '' : Buffer.from(value, 'base64').toString('hex');
}
