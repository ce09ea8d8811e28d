"""Pure transforms: frames in, frames out. No paths, environment, clock or network in here."""
