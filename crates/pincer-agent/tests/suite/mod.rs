mod gate;
mod run_loop;
