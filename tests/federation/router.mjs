// A real Apollo router (@apollo/gateway on @apollo/server) over a composed supergraph.
// It forwards the caller's credentials and W3C trace context to every subgraph.
// Usage: node router.mjs SUPERGRAPH_FILE PORT
import { readFileSync } from 'node:fs';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';

// Off before the gateway is built: its data collection would probe cloud metadata
// addresses and report to Apollo, and this router must talk to loopback only.
process.env.APOLLO_TELEMETRY_DISABLED = 'true';

const [supergraphFile, port] = process.argv.slice(2);
const FORWARDED = ['authorization', 'x-api-key', 'traceparent', 'tracestate', 'x-request-id'];

class ForwardingDataSource extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    for (const name of FORWARDED) {
      if (context.headers?.[name]) request.http.headers.set(name, context.headers[name]);
    }
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: readFileSync(supergraphFile, 'utf8'),
  buildService: ({ url }) => new ForwardingDataSource({ url }),
});
const server = new ApolloServer({ gateway });
const { url } = await startStandaloneServer(server, {
  listen: { host: '127.0.0.1', port: Number(port) },
  context: async ({ req }) => ({
    headers: Object.fromEntries(FORWARDED.map((name) => [name, req.headers[name]]).filter(([, v]) => v)),
  }),
});
console.log(`router ready at ${url}`);
