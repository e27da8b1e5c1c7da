// A real OpenID provider (oidc-provider, OpenID-certified) on loopback for the single sign-on tests.
//
//   node tests/sso/provider.mjs <port> <directory.json>
//
// directory.json holds the client and the people of the directory; it is read again at each sign-in, so a test
// can change someone's groups between two sign-ins:
//   {"client": {"client_id": ..., "client_secret": ..., "redirect_uris": [...]},
//    "accounts": {"<sub>": {"preferred_username": ..., "name": ..., "email": ..., "groups": [...]}},
//    "tamper_id_token": false}
// With "tamper_id_token" true, the token endpoint answers with an ID token whose payload was changed after it
// was signed (what an attacker in the middle would send). Sign-in and consent are oidc-provider's own pages
// (devInteractions): any password is accepted for an account of the directory.
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const [port, directoryPath] = process.argv.slice(2);
const directory = () => JSON.parse(readFileSync(directoryPath, 'utf8'));
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{ ...directory().client, grant_types: ['authorization_code'], response_types: ['code'] }],
  cookies: { keys: ['civicflow-sso-tests-only'] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
    groups: ['groups'],
  },
  // Claims of the requested scopes in the ID token, as Entra ID puts its groups there.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  async findAccount(ctx, sub) {
    const person = directory().accounts[sub];
    if (!person) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...person }) };
  },
});

provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/token' && ctx.body && ctx.body.id_token && directory().tamper_id_token) {
    const [header, payload, signature] = ctx.body.id_token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    claims.groups = ['civicflow-admins'];
    ctx.body = { ...ctx.body, id_token: [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.') };
  }
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening on ${issuer}`);
});
