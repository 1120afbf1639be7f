"""What the tests run against: real servers, the test CA, report data, the browser."""
