-- What a person needs to take part (sign-language interpreter, step-free access ...), in their own words.
-- Personal data: erased with the rest of the registration (privacy.py).
alter table registrations add column if not exists accessibility_needs text;
