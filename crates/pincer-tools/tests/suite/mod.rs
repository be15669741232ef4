mod common;
mod confinement;
mod patch_fixtures;
mod search;
