// Hive Gateway (MIT, Apollo Federation compatible) in front of union-gateway.
// Plain JavaScript rather than TypeScript: nothing to transpile, so the
// container's root filesystem can stay read-only.
export const gatewayConfig = {
  supergraph: '/gateway/supergraph.graphql',
  // The API key must reach the subgraph: it decides scopes and visibility.
  propagateHeaders: {
    fromClientToSubgraphs({ request }) {
      const headers = {};
      for (const name of ['authorization', 'x-api-key', 'traceparent', 'tracestate']) {
        const value = request.headers.get(name);
        if (value) headers[name] = value;
      }
      return headers;
    },
  },
  transportEntries: {
    '*.http': {
      options: {
        // union-gateway serves subscriptions with graphql-transport-ws on
        // /graphql, and reads a browser's key from connection_init.
        subscriptions: {
          kind: 'ws',
          location: '/graphql',
          options: {
            connectionParams: {
              Authorization: '{context.headers.authorization}',
            },
          },
        },
      },
    },
  },
  // Introspection is decided per key by the subgraph (the introspection scope).
  disableIntrospection: false,
  // The IDE lives on the gateway itself (offline assets); the router's own
  // GraphiQL would load from a CDN.
  graphiql: false,
};
