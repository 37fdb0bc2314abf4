module github.com/caddy-wagi/caddy-wagi/tests

go 1.25
