// JSON-schema pieces for numbers the API stores: integers SQLite keeps exactly. A larger one (or
// 1e400, read as Infinity) is then a 400 naming the field, not a 500 from the database driver.
export const safeInt = { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER } as const;
export const offsetInt = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;
