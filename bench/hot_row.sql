UPDATE bench_balance SET balance = balance - 1 WHERE id = 2 RETURNING balance;
