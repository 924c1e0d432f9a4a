/**
 * grpc-js gives TLS the address it dials as the server name, an IP address included, and
 * Node 20 then prints a deprecation warning (DEP0123) on every connection to an IP address.
 * The certificate is still checked against that address (its IP SAN); the warning only tells
 * that no SNI is sent. The CLI and the agent drop that one warning, so their stderr stays
 * what the docs show; every other warning is printed as before.
 */
export function dropTlsServernameWarning(): void {
  const emit = process.emitWarning.bind(process);
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const [typeOrOptions, code] = rest;
    const warningCode =
      typeof typeOrOptions === 'object' && typeOrOptions !== null
        ? (typeOrOptions as { code?: unknown }).code
        : code;
    if (warningCode === 'DEP0123') return;
    (emit as (w: string | Error, ...r: unknown[]) => void)(warning, ...rest);
  }) as typeof process.emitWarning;
}
