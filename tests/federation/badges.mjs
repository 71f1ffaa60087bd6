// A second, independent subgraph: it adds Member.badgeColor and lists "badge holders" by id,
// so the router must ask union-gateway for everything else about them (_entities).
// Usage: node badges.mjs PORT MEMBER_ID[,MEMBER_ID...]
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

const [port, ids = ''] = process.argv.slice(2);
const holders = ids.split(',').filter(Boolean);

const typeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])

  type Member @key(fields: "id") {
    id: ID!
    badgeColor: String
  }

  type Query {
    badgeHolders: [Member!]!
  }
`);

// Deterministic, so the test can tell what the answer must be.
const badgeColor = (id) => `badge-${id}`;

const resolvers = {
  Query: { badgeHolders: () => holders.map((id) => ({ id })) },
  Member: {
    __resolveReference: (reference) => ({ id: reference.id }),
    badgeColor: (member) => badgeColor(member.id),
  },
};

const server = new ApolloServer({ schema: buildSubgraphSchema({ typeDefs, resolvers }) });
const { url } = await startStandaloneServer(server, { listen: { host: '127.0.0.1', port: Number(port) } });
console.log(`badges subgraph ready at ${url}`);
