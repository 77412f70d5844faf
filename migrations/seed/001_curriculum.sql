-- Seed: Python curriculum (5 modules x 4 topics). order_index is the global learning order;
-- dependencies list prerequisite topic names. Upsert on (module_name, topic_name);
-- existing rows are only overwritten when pgk8s_update_existing is true.

INSERT INTO public.curriculum (module_name, topic_name, order_index, dependencies, estimated_minutes, description)
VALUES
    ('Python Basics', 'Variables and Types', 1, '[]'::jsonb, 30,
     'Names, assignment, and the built-in types int, float, str, bool and None.'),
    ('Python Basics', 'Numbers and Arithmetic', 2, '["Variables and Types"]'::jsonb, 30,
     'Arithmetic operators, integer vs. true division, modulo, rounding and the math module.'),
    ('Python Basics', 'Strings', 3, '["Variables and Types"]'::jsonb, 45,
     'Indexing, slicing, common string methods and f-strings.'),
    ('Python Basics', 'Input and Output', 4, '["Strings"]'::jsonb, 30,
     'Reading input with input(), converting it, and formatting output with print().'),

    ('Control Flow', 'Conditionals', 5, '["Variables and Types", "Numbers and Arithmetic"]'::jsonb, 40,
     'if / elif / else, comparison and boolean operators, truthiness.'),
    ('Control Flow', 'While Loops', 6, '["Conditionals"]'::jsonb, 35,
     'Condition-controlled loops, break and continue, avoiding infinite loops.'),
    ('Control Flow', 'For Loops', 7, '["Conditionals", "Strings"]'::jsonb, 40,
     'Iterating over sequences and range(), enumerate() and zip().'),
    ('Control Flow', 'Exceptions', 8, '["Conditionals", "Input and Output"]'::jsonb, 45,
     'try / except / else / finally, common built-in exceptions, raising errors.'),

    ('Data Structures', 'Lists', 9, '["For Loops"]'::jsonb, 50,
     'Creating, indexing, slicing and mutating lists; list comprehensions.'),
    ('Data Structures', 'Tuples', 10, '["Lists"]'::jsonb, 25,
     'Immutable sequences, packing and unpacking.'),
    ('Data Structures', 'Dictionaries', 11, '["Lists"]'::jsonb, 50,
     'Key/value mappings, iteration over items, get() and dict comprehensions.'),
    ('Data Structures', 'Sets', 12, '["Lists"]'::jsonb, 30,
     'Unique collections, membership tests, union, intersection and difference.'),

    ('Functions', 'Defining Functions', 13, '["Conditionals", "For Loops"]'::jsonb, 40,
     'def, calling functions, docstrings and return values.'),
    ('Functions', 'Arguments and Return Values', 14, '["Defining Functions", "Tuples"]'::jsonb, 45,
     'Positional and keyword arguments, defaults, *args / **kwargs, returning multiple values.'),
    ('Functions', 'Scope', 15, '["Defining Functions"]'::jsonb, 30,
     'Local vs. global names, the LEGB rule, global and nonlocal.'),
    ('Functions', 'Recursion', 16, '["Arguments and Return Values"]'::jsonb, 60,
     'Base cases, recursive cases, recursion depth and when to prefer iteration.'),

    ('Object-Oriented Programming', 'Classes and Objects', 17, '["Defining Functions", "Dictionaries"]'::jsonb, 50,
     'Defining classes, creating instances, __init__ and self.'),
    ('Object-Oriented Programming', 'Methods and Attributes', 18, '["Classes and Objects"]'::jsonb, 45,
     'Instance vs. class attributes, instance methods, properties.'),
    ('Object-Oriented Programming', 'Inheritance', 19, '["Methods and Attributes"]'::jsonb, 50,
     'Subclasses, overriding methods, super() and isinstance().'),
    ('Object-Oriented Programming', 'Special Methods', 20, '["Methods and Attributes"]'::jsonb, 45,
     'Dunder methods such as __repr__, __eq__, __len__ and operator overloading.')
ON CONFLICT (module_name, topic_name) DO UPDATE
SET order_index       = EXCLUDED.order_index,
    dependencies      = EXCLUDED.dependencies,
    estimated_minutes = EXCLUDED.estimated_minutes,
    description       = EXCLUDED.description
WHERE :'pgk8s_update_existing'::boolean
  AND (curriculum.order_index, curriculum.dependencies, curriculum.estimated_minutes, curriculum.description)
      IS DISTINCT FROM
      (EXCLUDED.order_index, EXCLUDED.dependencies, EXCLUDED.estimated_minutes, EXCLUDED.description);
