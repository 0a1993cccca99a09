-- The language a subscription's alerts are written in (domain/rendering.py). New
-- subscriptions default to zh-CN; those that exist already received English, so they
-- keep it (the column is added with 'en', then the default changes).
ALTER TABLE subscriptions
    ADD COLUMN locale text NOT NULL DEFAULT 'en' CHECK (locale IN ('zh-CN', 'en'));
ALTER TABLE subscriptions ALTER COLUMN locale SET DEFAULT 'zh-CN';
