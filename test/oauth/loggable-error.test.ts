import * as oauth from 'oauth4webapi';
import { describe, expect, it } from 'vitest';
import { loggableError } from '../../server/oauth/tokens.js';

// oauth4webapi attaches a refused token response's body to its error; what the control plane
// logs of an OAuth failure must never carry it.

describe('loggableError', () => {
  it('keeps name and message of a refused token response, never its body', async () => {
    const body = { access_token: 'at-canary-4b7e1f0c9a', refresh_token: 'rt-canary-8d2a6e3f17' };
    const res = new Response(JSON.stringify(body), {
      status: 200,
      headers: { 'content-type': 'application/json' },
    });
    const as = { issuer: 'https://idp.example', token_endpoint: 'https://idp.example/token' };
    const err = await oauth
      .processRefreshTokenResponse(as, { client_id: 'c' }, res)
      .catch((e: unknown) => e);
    // The library does carry the tokens on the error itself.
    expect(JSON.stringify((err as { cause?: unknown }).cause)).toContain('rt-canary-8d2a6e3f17');
    const logged = JSON.stringify(loggableError(err));
    expect(logged).toContain('token_type');
    expect(logged).not.toContain('at-canary-4b7e1f0c9a');
    expect(logged).not.toContain('rt-canary-8d2a6e3f17');
  });
});
