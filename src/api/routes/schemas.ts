import { MAX_TAG_VALUE_LENGTH, MAX_TAGS, TAG_KEY } from '../../storage/index.js';

export const EUI_PATTERN = '^[0-9a-fA-F]{16}$';
export const KEY_PATTERN = '^[0-9a-fA-F]{32}$';
export const DEVADDR_PATTERN = '^[0-9a-fA-F]{8}$';

/** An object's id in a body or a query (a UUID, a key id): 1 to 200 characters. */
export const idSchema = { type: 'string', minLength: 1, maxLength: 200 } as const;

/** A name as the storage layer accepts it (`toName`): 1 to 200 characters. */
export const nameSchema = { type: 'string', minLength: 1, maxLength: 200 } as const;

/** Tags: up to 50 `key: value` texts (keys of letters, digits, `_`, `-`, `.`), as stored. */
export const tagsSchema = {
  type: 'object',
  maxProperties: MAX_TAGS,
  propertyNames: { pattern: TAG_KEY.source },
  additionalProperties: { type: 'string', maxLength: MAX_TAG_VALUE_LENGTH },
} as const;

export const locationSchema = {
  type: 'object',
  required: ['latitude', 'longitude'],
  additionalProperties: false,
  properties: {
    latitude: { type: 'number', minimum: -90, maximum: 90 },
    longitude: { type: 'number', minimum: -180, maximum: 180 },
    altitude: { type: 'number' },
  },
} as const;
