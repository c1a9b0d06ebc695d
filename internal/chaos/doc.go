// Package chaos is Vigil's randomised fault-injection harness: a seeded nemesis schedule, a recorded history of what a client and an independent poller saw, and checkers that find split brain, lost acknowledged events and groups left without a holder.
package chaos
