// Every test's environment, inherited by the commands the tests start: under --jobs, every
// threaded stage runs in a process of its own, however small the test's run (the tests of
// --jobs, of a killed child and of ENOSPC in a child need those processes). The default, which
// keeps small stages in the main process, is tested on its own in test/jobs.test.ts.
process.env.MNIST_PIPELINE_MIN_PROCESS_COST = '0';
