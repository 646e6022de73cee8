"""What a person texts, read without a database: amounts, commands, questions, periods, categories."""
