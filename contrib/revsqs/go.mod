module github.com/revguard/revguard/contrib/revsqs

go 1.26

require (
	github.com/aws/aws-lambda-go v1.55.1
	github.com/revguard/revguard v0.0.0-00010101000000-000000000000
	github.com/stretchr/testify v1.12.1
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect

replace github.com/revguard/revguard => ../..
