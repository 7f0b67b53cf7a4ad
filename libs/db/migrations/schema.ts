import { Table, TableColumnOptions, TableIndex } from 'typeorm';

/** Column helpers for migrations, so each one reads as a schema and runs unchanged on SQLite and PostgreSQL. */
export const col = {
  id: (name = 'id', length = 64): TableColumnOptions => ({
    name,
    type: 'varchar',
    length: String(length),
    isPrimary: true,
  }),
  str: (name: string, length = 255, nullable = false): TableColumnOptions => ({
    name,
    type: 'varchar',
    length: String(length),
    isNullable: nullable,
  }),
  text: (name: string, nullable = false): TableColumnOptions => ({
    name,
    type: 'text',
    isNullable: nullable,
  }),
  bool: (name: string): TableColumnOptions => ({ name, type: 'boolean' }),
  int: (name: string, nullable = false): TableColumnOptions => ({
    name,
    type: 'integer',
    isNullable: nullable,
  }),
  json: (name: string): TableColumnOptions => ({ name, type: 'text' }),
  time: (name: string, nullable = false): TableColumnOptions => ({
    name,
    type: 'varchar',
    length: '32',
    isNullable: nullable,
  }),
};

export function table(
  name: string,
  columns: TableColumnOptions[],
  indices: { columns: string[]; unique?: boolean }[] = [],
): Table {
  return new Table({
    name,
    columns,
    indices: indices.map(
      (index) =>
        new TableIndex({
          name: `ix_${name}_${index.columns.join('_')}`,
          columnNames: index.columns,
          isUnique: index.unique ?? false,
        }),
    ),
  });
}
