/**
 * PJLink class 1 (JBMIA PJLink specification 1.04), the subset the driver and simulator speak, over TCP
 * port 4352. Pure formatting and parsing, no I/O.
 * - Greeting from the projector on connect: `PJLINK 0` (no authentication) or `PJLINK 1 <random>`; with
 *   authentication the first command is prefixed by md5(<random> + password) in hex.
 * - Command: `%1<CMD4> <param>\r`, query: `%1<CMD4> ?\r`. Answer: `%1<CMD4>=<value>\r`, where value is `OK`,
 *   the queried value, or `ERR1` (undefined command), `ERR2` (out of parameter), `ERR3` (unavailable
 *   time), `ERR4` (projector failure), `ERRA` (authentication failure, as `PJLINK ERRA`).
 */
export const pjlinkDefaultPort = 4352;
export const pjlinkTerminator = '\r';

export type PjlinkCommand = 'POWR' | 'INPT' | 'AVMT' | 'NAME' | 'INST' | 'ERST' | 'LAMP' | 'INF1' | 'INF2' | 'CLSS';

export const pjlinkErrors: Record<string, string> = {
  ERR1: 'undefined command',
  ERR2: 'out of parameter',
  ERR3: 'unavailable time',
  ERR4: 'projector failure',
  ERRA: 'authentication failure',
};

/** Power status codes of `POWR ?`. */
export const powerStates = { '0': 'off', '1': 'on', '2': 'cooling', '3': 'warming' } as const;

/** An input code: type digit 1-5 (RGB, VIDEO, DIGITAL, STORAGE, NETWORK) and a number 1-9. */
export const inputCodePattern = /^[1-5][1-9]$/;

export function formatCommand(command: PjlinkCommand, param: string): string {
  return `%1${command} ${param}${pjlinkTerminator}`;
}

export type PjlinkLine =
  | { kind: 'greeting'; auth: false }
  | { kind: 'greeting'; auth: true; random: string }
  | { kind: 'auth-error' }
  | { kind: 'answer'; command: string; value: string }
  | { kind: 'unknown'; text: string };

export function parseLine(text: string): PjlinkLine {
  if (text === 'PJLINK 0') return { kind: 'greeting', auth: false };
  const auth = /^PJLINK 1 (\S+)$/.exec(text);
  if (auth) return { kind: 'greeting', auth: true, random: auth[1]! };
  if (text === 'PJLINK ERRA') return { kind: 'auth-error' };
  const answer = /^%1([A-Z0-9]{4})=(.*)$/.exec(text);
  if (answer) return { kind: 'answer', command: answer[1]!, value: answer[2]! };
  return { kind: 'unknown', text };
}

export type PjlinkRequest = { kind: 'request'; command: string; param: string } | { kind: 'malformed' };

/** What the simulated projector reads: `[<digest>]%1CMD4 param`. */
export function parseRequest(text: string, digestLength = 0): PjlinkRequest {
  const body = text.slice(digestLength);
  const match = /^%1([A-Z0-9]{4}) (.+)$/.exec(body);
  return match ? { kind: 'request', command: match[1]!, param: match[2]! } : { kind: 'malformed' };
}
