import { invalid } from '../errors.js';

/** Collections, OAuth clients and accounts share one name rule. */
export const RESOURCE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Names appear in errors, so an absurd one is cut short there. */
export function quote(text: string): string {
  const shown = text.length > 64 ? `${text.slice(0, 64)}...` : text;
  return JSON.stringify(shown);
}

export function resourceName(field: string, value: string): string {
  if (value === '') throw invalid(`"${field}" is required`);

  if (!RESOURCE_NAME.test(value)) {
    throw invalid(`"${field}" must match ${RESOURCE_NAME.source}; got ${quote(value)}`);
  }
  return value;
}

export function required(field: string, value: string): string {
  if (value === '') throw invalid(`"${field}" is required`);
  return value;
}

export function maxLength(field: string, value: string, max: number): string {
  if (value.length > max) {
    throw invalid(`"${field}" must be at most ${max} characters; got ${value.length}`);
  }
  return value;
}

export function noNul(field: string, value: string): string {
  if (value.includes('\0')) throw invalid(`"${field}" must not contain NUL bytes`);
  return value;
}

export function httpsUrl(field: string, value: string, options: { allowHttp: boolean }): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // URL's own message can repeat the input; ours names the field instead.
    throw invalid(`"${field}" must be an absolute URL`);
  }
  const schemes = options.allowHttp ? ['https:', 'http:'] : ['https:'];
  if (!schemes.includes(url.protocol)) {
    throw invalid(`"${field}" must use ${schemes.map((s) => s.slice(0, -1)).join(' or ')}`);
  }
  return value;
}
