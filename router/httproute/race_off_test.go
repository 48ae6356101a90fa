//go:build !race

package httproute

const raceEnabled = false
