-- API keys. Only a SHA-256 hash of each key is stored: the key itself is shown once, when it
-- is created. Keys are long random strings, so a fast hash is enough to make a stolen table
-- useless; the prefix is kept in clear so people can tell their keys apart.
CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (name <> '' AND length(name) <= 200),
    role text NOT NULL CHECK (role IN ('service', 'support', 'finance', 'auditor', 'admin')),
    environment text NOT NULL CHECK (environment IN ('test', 'live')),
    key_hash bytea NOT NULL CHECK (octet_length(key_hash) = 32),
    key_prefix text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CONSTRAINT api_keys_key_hash_unique UNIQUE (key_hash)
);
