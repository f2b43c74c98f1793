-- Tables of the content service come with its own migrations; the bus's tables are created before these.
select 1;
