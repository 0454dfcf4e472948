//go:build !(cgo && linux)

package blas

// libCore is "" where the BLAS has no core to report (Accelerate, the pure-Go fallback).
func libCore() string { return "" }

// Config describes the BLAS build.
func Config() string { return Backend }
