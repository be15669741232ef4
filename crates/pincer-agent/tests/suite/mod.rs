mod run_loop;
