/**
 * orchestrator.v1 messages as the CLI receives them (proto/orchestrator.proto, loaded by
 * src/grpc/protos.ts: field names as in the .proto, enums as their names, defaults filled in).
 */

export interface FacadeNode {
  name: string;
  kind: string;
  after: string[];
  topic: string;
  compensable: boolean;
  branches: string[];
  events: string[];
}

export interface Facade {
  name: string;
  mode: string;
  version: number;
  nodes: FacadeNode[];
  mermaid: string;
  running_sagas: number;
}

export interface Visit {
  visit: number;
  status: string;
  attempts: number;
  output_json: string;
  error: string;
  started_at: string;
  ended_at: string;
  wake_at: string;
}

export interface NodeState {
  name: string;
  kind: string;
  visits: Visit[];
}

export interface Waiting {
  node: string;
  events: string[];
  until: string;
}

export interface SagaEvent {
  seq: number;
  at: string;
  type: string;
  step: string;
  detail: string;
  pod_id: string;
}

export interface Saga {
  request_id: string;
  facade: string;
  version: number;
  status: string;
  input_json: string;
  output_json: string;
  error: string;
  error_code: string;
  created_at: string;
  updated_at: string;
  mode: string;
  deadline: string;
  owner: string;
  revision: number;
  history: SagaEvent[];
  nodes: NodeState[];
  waiting: Waiting[];
  mermaid: string;
  left_alone: string;
}

export interface ListSagasResponse {
  sagas: Saga[];
  next_page_token: string;
}
