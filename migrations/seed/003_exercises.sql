-- Seed: starter Python exercises (mixed difficulty) with JSON test cases and reference solutions.
-- test_cases: [{"input": [positional args...], "expected": value}, ...]. Upsert on title;
-- existing rows are only overwritten when pgk8s_update_existing is true.

INSERT INTO public.exercises (title, description, difficulty, topic, test_cases, solution)
VALUES
    ('Sum of Two Numbers',
     $d$Write a function add(a, b) that returns the sum of the two numbers a and b.$d$,
     'beginner', 'Numbers and Arithmetic',
     '[{"input": [2, 3], "expected": 5},
       {"input": [-4, 4], "expected": 0},
       {"input": [0, 0], "expected": 0},
       {"input": [2.5, 0.5], "expected": 3.0}]'::jsonb,
     $py$def add(a, b):
    return a + b
$py$),

    ('Reverse a String',
     $d$Write a function reverse_string(s) that returns the string s reversed.$d$,
     'beginner', 'Strings',
     '[{"input": ["hello"], "expected": "olleh"},
       {"input": ["Python"], "expected": "nohtyP"},
       {"input": ["a"], "expected": "a"},
       {"input": [""], "expected": ""}]'::jsonb,
     $py$def reverse_string(s):
    return s[::-1]
$py$),

    ('FizzBuzz',
     $d$Write a function fizzbuzz(n) that returns "Fizz" if n is divisible by 3, "Buzz" if it is divisible by 5, "FizzBuzz" if it is divisible by both, and otherwise n as a string.$d$,
     'beginner', 'Conditionals',
     '[{"input": [3], "expected": "Fizz"},
       {"input": [10], "expected": "Buzz"},
       {"input": [15], "expected": "FizzBuzz"},
       {"input": [7], "expected": "7"}]'::jsonb,
     $py$def fizzbuzz(n):
    if n % 15 == 0:
        return "FizzBuzz"
    if n % 3 == 0:
        return "Fizz"
    if n % 5 == 0:
        return "Buzz"
    return str(n)
$py$),

    ('Count Vowels',
     $d$Write a function count_vowels(s) that returns how many vowels (a, e, i, o, u, upper or lower case) the string s contains.$d$,
     'beginner', 'For Loops',
     '[{"input": ["hello"], "expected": 2},
       {"input": ["AEIOU"], "expected": 5},
       {"input": ["rhythm"], "expected": 0},
       {"input": ["Programming in Python"], "expected": 5}]'::jsonb,
     $py$def count_vowels(s):
    count = 0
    for ch in s.lower():
        if ch in "aeiou":
            count += 1
    return count
$py$),

    ('Safe Division',
     $d$Write a function safe_divide(a, b) that returns a / b, or None when b is zero. Use try/except rather than checking b in advance.$d$,
     'intermediate', 'Exceptions',
     '[{"input": [10, 2], "expected": 5.0},
       {"input": [7, 2], "expected": 3.5},
       {"input": [1, 0], "expected": null},
       {"input": [0, 5], "expected": 0.0}]'::jsonb,
     $py$def safe_divide(a, b):
    try:
        return a / b
    except ZeroDivisionError:
        return None
$py$),

    ('Remove Duplicates',
     $d$Write a function dedupe(items) that returns a new list with duplicates removed, keeping the first occurrence of each element in its original order.$d$,
     'intermediate', 'Lists',
     '[{"input": [[1, 2, 2, 3, 1]], "expected": [1, 2, 3]},
       {"input": [["b", "a", "b"]], "expected": ["b", "a"]},
       {"input": [[]], "expected": []},
       {"input": [[5, 5, 5]], "expected": [5]}]'::jsonb,
     $py$def dedupe(items):
    seen = set()
    result = []
    for item in items:
        if item not in seen:
            seen.add(item)
            result.append(item)
    return result
$py$),

    ('Word Frequency',
     $d$Write a function word_counts(text) that returns a dictionary mapping each lower-cased word in text (words are separated by whitespace) to the number of times it occurs.$d$,
     'intermediate', 'Dictionaries',
     '[{"input": ["the cat and the hat"], "expected": {"the": 2, "cat": 1, "and": 1, "hat": 1}},
       {"input": ["Go go GO"], "expected": {"go": 3}},
       {"input": [""], "expected": {}}]'::jsonb,
     $py$def word_counts(text):
    counts = {}
    for word in text.lower().split():
        counts[word] = counts.get(word, 0) + 1
    return counts
$py$),

    ('Common Elements',
     $d$Write a function common_elements(a, b) that returns a sorted list of the distinct values that appear in both lists a and b.$d$,
     'intermediate', 'Sets',
     '[{"input": [[1, 2, 3, 4], [3, 4, 5]], "expected": [3, 4]},
       {"input": [[1, 1, 2], [2, 2, 1]], "expected": [1, 2]},
       {"input": [[1, 2], [3, 4]], "expected": []}]'::jsonb,
     $py$def common_elements(a, b):
    return sorted(set(a) & set(b))
$py$),

    ('Flatten a Nested List',
     $d$Write a recursive function flatten(items) that takes a list whose elements may themselves be (arbitrarily nested) lists and returns a flat list of all non-list elements in order.$d$,
     'advanced', 'Recursion',
     '[{"input": [[1, [2, [3, 4]], 5]], "expected": [1, 2, 3, 4, 5]},
       {"input": [[[], [[]], 1]], "expected": [1]},
       {"input": [[]], "expected": []},
       {"input": [[["a"], ["b", ["c"]]]], "expected": ["a", "b", "c"]}]'::jsonb,
     $py$def flatten(items):
    result = []
    for item in items:
        if isinstance(item, list):
            result.extend(flatten(item))
        else:
            result.append(item)
    return result
$py$),

    ('Bank Account Class',
     $d$Write a class BankAccount with a balance attribute starting at 0, a deposit(amount) method and a withdraw(amount) method that raises ValueError when the balance is insufficient. Then write a function run_account(operations) that creates an account, applies each ["deposit", amount] or ["withdraw", amount] operation in order (skipping withdrawals that raise ValueError) and returns the final balance.$d$,
     'advanced', 'Classes and Objects',
     '[{"input": [[["deposit", 100], ["withdraw", 30]]], "expected": 70},
       {"input": [[["deposit", 50], ["withdraw", 80], ["deposit", 10]]], "expected": 60},
       {"input": [[]], "expected": 0}]'::jsonb,
     $py$class BankAccount:
    def __init__(self):
        self.balance = 0

    def deposit(self, amount):
        self.balance += amount

    def withdraw(self, amount):
        if amount > self.balance:
            raise ValueError("insufficient funds")
        self.balance -= amount


def run_account(operations):
    account = BankAccount()
    for action, amount in operations:
        try:
            getattr(account, action)(amount)
        except ValueError:
            pass
    return account.balance
$py$)
ON CONFLICT (title) DO UPDATE
SET description = EXCLUDED.description,
    difficulty  = EXCLUDED.difficulty,
    topic       = EXCLUDED.topic,
    test_cases  = EXCLUDED.test_cases,
    solution    = EXCLUDED.solution
WHERE :'pgk8s_update_existing'::boolean
  AND (exercises.description, exercises.difficulty, exercises.topic, exercises.test_cases, exercises.solution)
      IS DISTINCT FROM
      (EXCLUDED.description, EXCLUDED.difficulty, EXCLUDED.topic, EXCLUDED.test_cases, EXCLUDED.solution);
