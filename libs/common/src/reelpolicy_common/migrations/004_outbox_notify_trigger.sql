-- Wake the outbox relays (LISTEN reelpolicy_outbox) from the database itself when
-- outbox rows are inserted (also by COPY): delivered on commit, once per transaction,
-- and one round trip less for every writer than an explicit pg_notify.
CREATE FUNCTION outbox_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('reelpolicy_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_inserted();
