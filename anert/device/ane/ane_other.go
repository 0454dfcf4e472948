//go:build !(darwin && arm64)

package ane

// Off darwin/arm64 there is no ANE: importing this package registers nothing, and
// device.Open("ane") returns device.ErrNoANE.
