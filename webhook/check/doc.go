// Package check inspects a live cluster for the Pods the injector protects, those it should and
// does not, and what keeps their scrapes from working, as findings each with a one-line fix.
package check
