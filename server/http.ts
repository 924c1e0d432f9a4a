import { readFileSync } from 'node:fs';
import { createServer as createHttp, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { ServerConfig } from './config.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { Connector } from './oauth/connect.js';
import { loggableError } from './oauth/tokens.js';

export const CALLBACK_PATH = '/oauth/callback';

export interface HttpListener {
  /** The address bound, with the real port. */
  address: string;
  /** The redirect URI providers send the admin's browser back to. */
  redirectUri: string;
  close(): Promise<void>;
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res: ServerResponse, status: number, message: string): void {
  const body =
    '<!doctype html><meta charset="utf-8"><title>runkeys</title>' +
    `<p>${escapeHtml(message)}</p>\n`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}

/**
 * The control plane's HTTP listener (`--http-listen`): the OAuth callback at /oauth/callback,
 * /healthz (the process is up), /readyz (it serves and its store answers) and /metrics
 * (Prometheus text format). TLS with the gRPC certificate when one is given; plaintext only on
 * loopback.
 * Pages never carry the code or a token, and say `no-referrer` so the callback URL, code
 * included, is not passed on by the browser.
 */
export interface HttpRoutes {
  connector: Connector;
  metrics: Metrics;
  /** Whether this replica serves: gRPC up and the store answering. */
  ready(): Promise<boolean>;
}

export async function startHttp(
  config: ServerConfig,
  routes: HttpRoutes,
  log: Logger,
): Promise<HttpListener> {
  const { connector, metrics } = routes;
  const listen = config.httpListen ?? '';
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
      return;
    }
    if (req.method === 'GET' && url.pathname === '/readyz') {
      routes.ready().then(
        (ok) => {
          res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
          res.end(ok ? 'ready\n' : 'not serving\n');
        },
        () => {
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('store unavailable\n');
        },
      );
      return;
    }
    if (req.method === 'GET' && url.pathname === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          log.error({ err }, 'metrics failed');
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('metrics failed\n');
        },
      );
      return;
    }
    if (req.method === 'GET' && url.pathname === CALLBACK_PATH) {
      connector.callback(url.searchParams).then(
        ({ status, message }) => page(res, status, message),
        (err: unknown) => {
          log.error({ err: loggableError(err) }, 'OAuth callback failed');
          page(res, 500, 'Connecting failed on the control plane; see its log.');
        },
      );
      return;
    }
    page(res, 404, 'Not found.');
  };
  const server =
    config.tls === undefined
      ? createHttp(handle)
      : createHttps(
          { cert: readFileSync(config.tls.certPath), key: readFileSync(config.tls.keyPath) },
          handle,
        );
  const sep = listen.lastIndexOf(':');
  const host = listen.slice(0, sep).replace(/^\[|\]$/g, '');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(listen.slice(sep + 1)), host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const address = `${listen.slice(0, sep)}:${port}`;
  const scheme = config.tls === undefined ? 'http' : 'https';
  const redirectUri = config.oauthRedirectUri ?? `${scheme}://${address}${CALLBACK_PATH}`;
  log.info({ address, redirectUri }, 'HTTP listener up');
  return {
    address,
    redirectUri,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
