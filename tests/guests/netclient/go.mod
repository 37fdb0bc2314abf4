module github.com/caddy-wagi/caddy-wagi/tests/guests/netclient

go 1.25

require (
	github.com/hashicorp/yamux v0.1.2
	github.com/shynome/go-fsnet v1.0.2
)
