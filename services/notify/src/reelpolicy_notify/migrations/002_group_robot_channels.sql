-- Group-robot channels (WeCom, DingTalk, Feishu): each is called at its robot's webhook
-- URL, like a webhook. DingTalk and Feishu robots sign with the secret the platform
-- showed the user (sealed here like a webhook secret); WeCom robots have none.
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_channel_check;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_channel_check
    CHECK (channel IN ('webhook', 'email', 'wecom', 'dingtalk', 'feishu'));

-- was (channel = 'webhook') = (url IS NOT NULL): every channel but e-mail has a url
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_check;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_url_check
    CHECK ((channel = 'email') = (url IS NULL));

ALTER TABLE subscriptions ALTER COLUMN secret_sealed DROP NOT NULL;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_secret_check
    CHECK ((channel = 'wecom') = (secret_sealed IS NULL));
