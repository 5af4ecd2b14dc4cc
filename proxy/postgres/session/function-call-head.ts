// The head of a FunctionCall (the fast path): what its decision needs, before its arguments.
//
//   'F', int32 length, int32 function oid, int16 n + n int16 format codes, int16 argument count,
//   then the arguments (int32 length + bytes each) and an int16 result format.
//
// A call is decided by the function its OID names and its argument count (the text it is decided
// as is `SELECT schema.name($1, ...)`), so a long call (a 70 MB lowrite) is decided from its head
// and its arguments stream through like a Bind's (streaming.ts). Only an approval needs the values.

/** The function OID and argument count at the start of a FunctionCall, or null when `raw` does not hold them (or they are malformed). */
export function functionCallHead(raw: Buffer): { oid: number; args: number } | null {
  if (raw.length < 11) return null;
  const oid = raw.readUInt32BE(5);
  const formats = raw.readInt16BE(9);
  const at = 11 + 2 * formats;
  if (formats < 0 || at + 2 > raw.length) return null;
  const args = raw.readInt16BE(at);
  return args < 0 ? null : { oid, args };
}
