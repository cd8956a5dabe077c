/** A decoder's context as one tracer keeps it, for tests that call decodeBatch themselves. */
import { EventClock, ExecCgroups, type DecodeContext } from '../../src/capture/decode.js';
import { execIdPrefix } from '../../src/events/exec-id.js';

/**
 * A fresh context: its own clock, and an exec cgroup table of 8 that takes every process as still
 * running. `bootId` goes into the execIds.
 */
export function decodeContext(node: string, bootOffsetNs: bigint, bootId = '0'.repeat(32)): DecodeContext {
  return { node, execIdPrefix: execIdPrefix({ node, bootId }), bootOffsetNs, clock: new EventClock(), cgroups: new ExecCgroups(8, () => true) };
}
