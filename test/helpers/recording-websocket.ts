import { WebSocket } from 'ws';

export interface RecordedFrame {
  channel: 'notify' | 'control';
  direction: 'server' | 'client';
  text: string;
}

/**
 * A `ws` WebSocket that records every text frame it sends and receives, for injection into the SDK
 * (`WebSocket` option). The channel is told from the URL path.
 */
export function recordingWebSocket(frames: RecordedFrame[]): new (url: string) => WebSocket {
  return class RecordingWebSocket extends WebSocket {
    private readonly channel: 'notify' | 'control';

    constructor(url: string) {
      super(url);
      this.channel = new URL(url).pathname.endsWith('/systems/control') ? 'control' : 'notify';
      this.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary) frames.push({ channel: this.channel, direction: 'server', text: data.toString('utf8') });
      });
    }

    override send(data: any, ...rest: any[]): void {
      if (typeof data === 'string') frames.push({ channel: this.channel, direction: 'client', text: data });
      (super.send as (...args: unknown[]) => void)(data, ...rest);
    }
  };
}
