/**
 * Where agents stream text as many small delta records, per format (see
 * ../shared/trajectories/SOURCES.md). The text of consecutive deltas with the same join key is
 * one stream to the scrubber; an end record (or idle, or end of input) closes the run.
 */
import type { Condition } from './json-path.js';

export interface DeltaRule {
  readonly when: readonly Condition[];
  /** Dotted path of the string that carries the delta. */
  readonly text: string;
}

export interface EndRule {
  readonly when: readonly Condition[];
  /** Ends every run of the preset, not only the one with the same key. */
  readonly all?: boolean;
}

export interface TrajectoryPreset {
  readonly name: string;
  /** Dotted paths whose values, together, name one run of deltas. */
  readonly key: readonly string[];
  readonly deltas: readonly DeltaRule[];
  readonly ends: readonly EndRule[];
}

const claudeDelta = (deltaType: string, text: string): DeltaRule => ({
  when: [
    { path: 'type', oneOf: ['stream_event'] },
    { path: 'event.type', oneOf: ['content_block_delta'] },
    { path: 'event.delta.type', oneOf: [deltaType] },
  ],
  text,
});

/** Claude Code `--output-format stream-json --include-partial-messages`. */
export const CLAUDE_STREAM_JSON: TrajectoryPreset = {
  name: 'claude-stream-json',
  key: ['session_id', 'parent_tool_use_id', 'event.index'],
  deltas: [
    claudeDelta('text_delta', 'event.delta.text'),
    claudeDelta('input_json_delta', 'event.delta.partial_json'),
    claudeDelta('thinking_delta', 'event.delta.thinking'),
  ],
  ends: [
    {
      when: [
        { path: 'type', oneOf: ['stream_event'] },
        { path: 'event.type', oneOf: ['content_block_stop'] },
      ],
    },
    { when: [{ path: 'type', oneOf: ['result'] }], all: true },
  ],
};

/** OpenAI Responses API streaming events (`response.*.delta` / `.done`), as Codex also emits. */
export const OPENAI_RESPONSES: TrajectoryPreset = {
  name: 'openai-responses',
  key: ['item_id', 'output_index', 'content_index', 'summary_index', 'command_index'],
  deltas: [{ when: [{ path: 'type', suffix: '.delta' }], text: 'delta' }],
  ends: [
    { when: [{ path: 'type', suffix: '.done' }] },
    {
      when: [
        { path: 'type', oneOf: ['response.completed', 'response.failed', 'response.incomplete'] },
      ],
      all: true,
    },
  ],
};

const ACP_CHUNKS = ['agent_message_chunk', 'agent_thought_chunk', 'user_message_chunk'];

/** Agent Client Protocol `session/update` chunks (JSON-RPC 2.0 over NDJSON). */
export const ACP: TrajectoryPreset = {
  name: 'acp',
  key: ['params.sessionId'],
  deltas: [
    {
      when: [
        { path: 'method', oneOf: ['session/update'] },
        { path: 'params.update.sessionUpdate', oneOf: ACP_CHUNKS },
        { path: 'params.update.content.type', oneOf: ['text'] },
      ],
      text: 'params.update.content.text',
    },
  ],
  ends: [
    {
      when: [
        { path: 'method', oneOf: ['session/update'] },
        { path: 'params.update.sessionUpdate', notOneOf: ACP_CHUNKS },
      ],
    },
    {
      when: [
        { path: 'result', exists: true },
        { path: 'method', exists: false },
      ],
      all: true,
    },
  ],
};

export const TRAJECTORY_PRESETS: readonly TrajectoryPreset[] = [
  CLAUDE_STREAM_JSON,
  OPENAI_RESPONSES,
  ACP,
];
