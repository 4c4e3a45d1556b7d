-- Tokens have a life: a branch token belongs to one branch, any token may
-- expire, and each records when it was last used (at most once a minute).
-- A branch token made before this migration has no branch: it is refused
-- at every branch until it is replaced (the check holds for new rows only).
ALTER TABLE api_tokens
    ADD COLUMN branch        text REFERENCES branches(branch_id),
    ADD COLUMN expires_at    timestamptz,
    ADD COLUMN last_used_at  timestamptz,
    ADD CONSTRAINT api_tokens_branch_role CHECK (branch IS NULL OR role = 'branch'),
    ADD CONSTRAINT api_tokens_expiry CHECK (expires_at IS NULL OR expires_at > created_at);
ALTER TABLE api_tokens
    ADD CONSTRAINT api_tokens_branch_token_has_branch CHECK (role <> 'branch' OR branch IS NOT NULL) NOT VALID;
