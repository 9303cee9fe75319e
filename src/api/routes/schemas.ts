export const EUI_PATTERN = '^[0-9a-fA-F]{16}$';
export const KEY_PATTERN = '^[0-9a-fA-F]{32}$';
export const DEVADDR_PATTERN = '^[0-9a-fA-F]{8}$';

/** A name as the storage layer accepts it (`toName`): 1 to 200 characters. */
export const nameSchema = { type: 'string', minLength: 1, maxLength: 200 } as const;

export const listQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 1000 },
    offset: { type: 'integer', minimum: 0 },
  },
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
