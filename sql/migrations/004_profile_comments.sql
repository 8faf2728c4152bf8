-- profscope store, schema version 4: the pprof `comment` strings (Profile field 13) of each
-- profile, in file order. Every sample type of one upload carries the same list. Profiles stored
-- before this migration have none.
ALTER TABLE profiles ADD COLUMN comments VARCHAR[] DEFAULT [];
