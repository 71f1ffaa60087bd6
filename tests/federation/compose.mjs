// Composes a supergraph with @apollo/composition.
// stdin: [{"name": ..., "url": ..., "sdl": ...}]; stdout: the supergraph SDL; errors on stderr, exit 1.
import { readFileSync } from 'node:fs';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';

const subgraphs = JSON.parse(readFileSync(0, 'utf8'));
const result = composeServices(
  subgraphs.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) })),
);
if (result.errors && result.errors.length) {
  for (const error of result.errors) console.error(error.message);
  process.exit(1);
}
process.stdout.write(result.supergraphSdl);
