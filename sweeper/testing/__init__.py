"""testing: harnesses for tests and benchmarks (a real multi-node Ray on one machine); never imported by the
package itself."""
