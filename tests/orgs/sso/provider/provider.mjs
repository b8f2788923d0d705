// A real OpenID Connect provider (panva/oidc-provider) for tests/orgs/sso: one confidential client,
// PKCE (S256) required, and the library's development login/consent pages, where any login is
// accepted and becomes the account id. The account id is the person's e-mail address, asserted
// verified (a login starting with "unverified+" is asserted unverified; see VERIFIED_PREFIXES).
// The subject id (sub) is the login: oidc-provider asserts the account id as sub.
//
// Usage: node provider.mjs  (configured through the environment)
//   OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URIS (comma-separated)
// Listens on a free loopback port and prints one JSON line: {"issuer": "http://127.0.0.1:<port>"}.
import http from 'node:http';
import crypto from 'node:crypto';

import Provider from 'oidc-provider';

const clientId = process.env.OIDC_CLIENT_ID;
const clientSecret = process.env.OIDC_CLIENT_SECRET;
const redirectUris = (process.env.OIDC_REDIRECT_URIS || '').split(',').filter(Boolean);
if (!clientId || !clientSecret || !redirectUris.length) {
  console.error('OIDC_CLIENT_ID, OIDC_CLIENT_SECRET and OIDC_REDIRECT_URIS are required');
  process.exit(2);
}

// A login prefix picks the email_verified claim: "unverified+" false, "string-false+" and
// "string-true+" the strings "false" and "true" (as AWS Cognito sends them); otherwise true.
const VERIFIED_PREFIXES = { 'unverified+': false, 'string-false+': 'false', 'string-true+': 'true' };

function account(login) {
  const prefix = Object.keys(VERIFIED_PREFIXES).find((p) => login.startsWith(p));
  const email = prefix ? login.slice(prefix.length) : login;
  const emailVerified = prefix ? VERIFIED_PREFIXES[prefix] : true;
  const sub = crypto.createHash('sha256').update(email).digest('hex').slice(0, 24);
  return {
    accountId: login,
    async claims() {
      return { sub, email, email_verified: emailVerified, name: email.split('@')[0] };
    },
  };
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    pkce: { required: () => true },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    features: { devInteractions: { enabled: true } },
    findAccount: (ctx, id) => account(id),
  });
  provider.proxy = false;
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
