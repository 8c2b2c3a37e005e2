// node-oidc-provider with the client-credentials grant, for tokenmint-client's tests.
//
// Listens on a free localhost port and prints one line, "listening <issuer>", once it accepts
// requests. The clients are fixed; their ids and secrets contain characters that RFC 6749
// §2.3.1 form-encoding changes, so that HTTP Basic is tested for real.
import http from 'node:http';
import Provider from 'oidc-provider';

const clients = [
  {
    client_id: 'post-client',
    client_secret: 'post secret+with:odd%chars',
    token_endpoint_auth_method: 'client_secret_post',
  },
  {
    client_id: 'basic:client id',
    client_secret: 'basic secret+with:odd%chars',
    token_endpoint_auth_method: 'client_secret_basic',
  },
].map((client) => ({
  ...client,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: 'api:read api:write',
}));

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients,
    scopes: ['api:read', 'api:write'],
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
    },
  });
  server.on('request', provider.callback());
  console.log(`listening ${issuer}`);
});

// Stop with the test: the parent closes stdin when it is done or dies.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
