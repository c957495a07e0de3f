/**
 * Wire-protocol constants shared by the kernel and every client (DESIGN section 2).
 *
 * This module has no dependencies so that the SDK can load it inside a sandboxed agent.
 * @module
 */

/** `"AGNT"` read as a little-endian uint32: bytes `54 4E 47 41` on the wire. */
export const MAGIC = 0x41474e54;
/** Header: magic u32, agent_id u32, op u8, payload_len u64, little-endian, packed. */
export const HEADER_LEN = 17;
/** Largest payload accepted or sent, in both directions. */
export const MAX_PAYLOAD = 1_048_576;

/** Every opcode the kernel knows, by name. */
export const Op = {
  NOOP: 0x00,
  THINK: 0x01,
  EXEC: 0x02,
  READ: 0x03,
  WRITE: 0x04,
  SPAWN: 0x10,
  KILL: 0x11,
  LIST: 0x12,
  SEND: 0x20,
  RECV: 0x21,
  BROADCAST: 0x22,
  REGISTER: 0x23,
  GET_PERMS: 0x40,
  SET_PERMS: 0x41,
  HTTP: 0x50,
  KERNEL_STATUS: 0xf0,
  SHUTDOWN: 0xf1,
  EXIT: 0xff,
} as const;

/** An opcode name, e.g. `"READ"`. */
export type OpName = keyof typeof Op;

/** Error codes carried in `code` of an error response (spec status codes plus DESIGN's two). */
export const ErrorCode = {
  ERROR: 0x01,
  INVALID_MSG: 0x02,
  NOT_FOUND: 0x03,
  TIMEOUT: 0x04,
  PERMISSION_DENIED: 0x05,
  QUOTA_EXCEEDED: 0x06,
} as const;

/** An error code name, e.g. `"PERMISSION_DENIED"`. */
export type ErrorCodeName = keyof typeof ErrorCode;

/** Default path of the kernel's main socket. */
export const DEFAULT_SOCKET = "/tmp/agentos.sock";
