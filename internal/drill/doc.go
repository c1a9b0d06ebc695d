// Package drill runs failover drills: it moves a group to another node (and
// optionally back) through the same operator requests a person would make,
// while a client-side probe samples the service, and turns the samples and
// step timings into a model.Drill result.
//
// The pure parts (outage arithmetic, schedules, the text report) take times
// as arguments; Run drives a drill through an Env the agent implements, so
// tests use a fake cluster and a fake service.
package drill
