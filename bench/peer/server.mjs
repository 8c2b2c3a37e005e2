// node-oidc-provider configured as tokenmint is in the harness: the client-credentials grant,
// client_secret_post, JWT access tokens signed with the algorithm given as the first argument
// (RS256, ES256 or EdDSA), a default resource so that every token is a JWT, no storage but
// memory. Prints "listening=<issuer>" once it accepts requests.
//
//   node server.mjs ES256 <port> <client_secret>
import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [alg = 'ES256', port = '0', secret = 'bench-secret'] = process.argv.slice(2);
const keyOptions = {
  RS256: ['rsa', { modulusLength: 2048 }],
  ES256: ['ec', { namedCurve: 'P-256' }],
  EdDSA: ['ed25519', {}],
}[alg];
if (!keyOptions) {
  console.error(`unknown algorithm ${alg}: use RS256, ES256 or EdDSA`);
  process.exit(2);
}
const { privateKey } = generateKeyPairSync(...keyOptions);
const jwk = { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: `bench-${alg}` };

const resource = 'https://api.example.com';
const server = http.createServer();
server.keepAliveTimeout = 60_000;
server.listen(Number(port), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'bench',
      client_secret: secret,
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'eligibility:read',
      id_token_signed_response_alg: alg,
    }],
    jwks: { keys: [jwk] },
    scopes: ['eligibility:read'],
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'eligibility:read',
          audience: resource,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg } },
        }),
      },
    },
  });
  server.on('request', provider.callback());
  console.log(`listening=${issuer}`);
});
